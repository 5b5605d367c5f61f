"""Experiment runners (absl + gin). The main job lands in issue #6."""
