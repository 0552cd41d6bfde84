"""Packaging beyond pyproject.toml: graceful-init, the compiled init.

``graceful/_pid1/init.c`` is compiled into ``graceful/_pid1/graceful-init`` when a C
compiler is found (``$CC``, the one Python was built with, or ``cc``). Without one the
package installs all the same and its Python init runs instead: a warning says so.
A wheel that carries the program is tagged for its platform (``py3-none-<platform>``):
the program does not depend on the Python version, only on the machine.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1 (pyproject.toml asks for more; a build without isolation)
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

SOURCE = os.path.join("graceful", "_pid1", "init.c")
PROGRAM = "graceful-init"
built: list[str] = []


def compile_init(target_dir: str) -> None:
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        print(f"warning: no C compiler ({' '.join(cc)}): {PROGRAM} not built; the Python init runs")
        return
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, PROGRAM)
    command = [*cc, "-O2", "-std=gnu11", "-s", "-o", target, SOURCE]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"warning: {PROGRAM} not built ({' '.join(command)}):\n{done.stderr}")
        return
    built.append(target)


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # pip install -e: beside the source
            compile_init(os.path.dirname(SOURCE))
        else:
            compile_init(os.path.join(self.build_lib, "graceful", "_pid1"))


class BdistWheel(bdist_wheel):
    def get_tag(self) -> tuple[str, str, str]:
        if not built:
            return super().get_tag()
        self.root_is_pure = False  # it carries a program built for this machine
        return "py3", "none", super().get_tag()[2]


setup(cmdclass={"build_py": BuildPy, "bdist_wheel": BdistWheel})
