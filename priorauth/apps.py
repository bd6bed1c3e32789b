from django.apps import AppConfig


class PriorauthConfig(AppConfig):
    name = "priorauth"
    verbose_name = "Prior authorization"
