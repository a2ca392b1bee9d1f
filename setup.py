"""Packs the shipped default model (models/default) into the wheel as postergenre/_models/default, so that a plain
`pip install` predicts offline; run from a checkout (or an editable install), the repository's folder is read."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = Path(__file__).resolve().parent / "models" / "default"
LEFT_OUT = ("eval_*", "figures_*", "label_shift.json", "text_gain_*")  # what evaluating it writes there


class BuildWithDefaultModel(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or not SHIPPED.is_dir():
            return
        target = Path(self.build_lib) / "postergenre" / "_models" / "default"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns(*LEFT_OUT))


setup(cmdclass={"build_py": BuildWithDefaultModel})
