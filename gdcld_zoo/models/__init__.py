"""Architectures. Importing a module registers its models in `gdcld_zoo.registry`."""

from gdcld_zoo.models import segformer  # noqa: F401
