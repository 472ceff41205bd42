"""sitsense: notices long sitting from a belt-worn accelerometer and coaches a hip-flexor release."""

__version__ = "0.1.0"
