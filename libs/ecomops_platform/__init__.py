"""Shared infrastructure of the ecomops services: no business rules live here."""
