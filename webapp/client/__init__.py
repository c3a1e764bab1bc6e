"""Command-line client of the Frontier REST API: ``python -m webapp.client --help``.

It imports no Django (only requests, tqdm and the standard library), so it runs anywhere those
two packages are installed, with a token from ``manage.py createapitoken``.
"""
