"""Synthetic datasets: cassettes of made-up users, titles and achievements, generated from a few
knobs and a seed (``xblreplay generate``)."""
