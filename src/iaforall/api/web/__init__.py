"""The web app's own JSON API (`/web/api`) and its pages; see docs/web-api.md."""
