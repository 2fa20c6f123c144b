"""The staff console: a Sanic web app (pages and a JSON API) for grid workers, property managers and admins."""
