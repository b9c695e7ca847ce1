"""The operations console: a backend-for-frontend (FastAPI) serving the single-page app built
from ``services/console/web`` and ``/api/*``, which calls the six services' REST APIs on the
signed-in user's behalf (their bearer token, kept in an HttpOnly session cookie)."""
