"""The model folder's package loads without TensorFlow: its network module imports it only inside the functions
that build, save or export a network."""
import subprocess
import sys

from postergenre.config import REPO_ROOT


def test_importing_every_modelfolder_module_loads_no_tensorflow():
    modules = sorted(p.stem for p in (REPO_ROOT / "postergenre" / "modelfolder").glob("*.py") if p.stem != "__init__")
    assert {"layout", "network", "card", "ship", "quantize", "lean", "provenance"} <= set(modules)
    code = ("import sys\n" + "".join(f"import postergenre.modelfolder.{m}\n" for m in modules)
            + "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"loaded at import: {result.stdout}"
