"""Side-by-side benchmarks of this plugin and the official C++ DICOMweb plugin.

Run with `.venv/bin/python -m benchmarks.run [--quick]`; see the Benchmarks section of README.rst.
"""
