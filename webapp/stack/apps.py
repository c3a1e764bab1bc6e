from django.apps import AppConfig


class StackConfig(AppConfig):
    name = "webapp.stack"
    label = "stack"
    verbose_name = "Frontier stack: health, the queue, make run and its demo"
