"""Protections against AI image editing (PhotoGuard's encoder attack) and how well they
survive purification (JPEG, low-pass, sharpening)."""
