"""Users and rows the web-side tests share."""

import pytest
from django.contrib.auth import get_user_model

from webapp.registry.models import BenchmarkSuite


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice")


@pytest.fixture
def bob():
    return get_user_model().objects.create_user("bob")


@pytest.fixture
def synthetic():
    return BenchmarkSuite.objects.get(name="synthetic")
