"""Celery app and tasks: thin glue between the database rows and the libraries."""
