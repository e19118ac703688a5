"""Architectures. Importing a module registers its models in `gdcld_zoo.registry`."""

from gdcld_zoo.models import segformer  # noqa: F401
from gdcld_zoo.models import deeplabv3, resunet, unet  # noqa: F401
from gdcld_zoo.models import hrnet  # noqa: F401
from gdcld_zoo.models import swin_unet, upernet  # noqa: F401
