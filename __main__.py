"""``python .`` (or ``python __main__.py``) runs the service locally on PORT."""

from main import serve

if __name__ == "__main__":
    serve()
