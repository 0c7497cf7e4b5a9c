"""Defenses against availability poisons: sharpening (SSK/RSK), frequency low-pass,
orthogonal projection, JPEG."""
