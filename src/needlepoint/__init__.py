"""Needlepoint: appropriateness, documentation and measured benefit of dry needling."""

__version__ = "0.1.0"
