"""Image (and 1-D signal) classification: the setting of Frankle & Carbin 2019 and its follow-ups."""
