import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(
    r'__version__ = "([^"]+)"', Path("orthanc_dicomweb/__init__.py").read_text()
).group(1)

setup(
    name="orthanc-dicomweb",
    version=VERSION,
    description="DICOMweb (QIDO-RS, WADO-RS, STOW-RS, WADO-URI) server and client for Orthanc",
    long_description=Path("README.rst").read_text(),
    long_description_content_type="text/x-rst",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    packages=find_packages(include=["orthanc_dicomweb", "orthanc_dicomweb.*"]),
    package_data={"orthanc_dicomweb": ["client/app/**/*", "py.typed"]},
    include_package_data=True,
    py_modules=["orthanc_dicomweb_plugin"],
    install_requires=[
        "pydicom>=3.0,<4",
        "Pillow>=10",
        "numpy>=1.24",
        "requests>=2.28",
        "pylibjpeg-rle>=2.0",  # RLE Lossless frames decoded in the plugin (rendered images)
        "orjson>=3.9",  # JSON answers: 20x faster than the standard library's encoder
        "psycopg[binary]>=3.1",  # shared state (servers, jobs, tokens) on a PostgreSQL index
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "dicomweb-client>=0.59",
            "ruff>=0.6",
            "mypy>=1.10",  # type check of the package (pyproject.toml [tool.mypy])
            "playwright>=1.40",
            "docutils>=0.20",  # the README is checked as reStructuredText
            "httplib2>=0.20",  # the HTTP client of Orthanc's own integration suite
            "hypothesis>=6.100",  # fuzzing of the parsers (tests/unit/test_fuzz_*.py)
        ],
    },
)
