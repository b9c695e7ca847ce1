"""The inventory service: SKU registry, multi-warehouse stock, TTL reservations, planning."""
