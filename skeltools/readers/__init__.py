"""Raw-format readers. Each only parses: it knows nothing of stores or presets."""
