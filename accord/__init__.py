"""accord: calibrated soft labels from disagreeing preference judgments, and reward models that use them."""

from accord.datasets.errors import AccordError, FitError, ValidationError

__version__ = "0.1.0"
__all__ = ["AccordError", "FitError", "ValidationError", "__version__"]
