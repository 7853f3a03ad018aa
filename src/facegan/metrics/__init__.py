"""Realism metrics (FID, KID, precision/recall, face rate): see issue #3."""
