"""Request logic behind the routes: they add and flush, the request dependency commits."""
