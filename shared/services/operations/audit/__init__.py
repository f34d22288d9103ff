"""The three-layer integration audit: data baseline, connectivity, logic consistency."""
