"""The ``jobline`` command (also ``python manage.py jobline``)."""
