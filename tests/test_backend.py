"""The light install: reading digits works without the ``train`` extra, and what needs it
says how to get it in one line (no traceback)."""

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, free_port, wait_until_serving

# Runs the CLI as on an install without the train extra: importing any of its packages
# fails as it would there.
LIGHT_CLI = textwrap.dedent(
    """
    import sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"keras", "tensorflow", "sklearn", "onnx"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, NotInstalled())
    from digitrec.cli import main

    code = main(sys.argv[1:])
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules
    sys.exit(code)
    """
)


def light(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", LIGHT_CLI, *args], cwd=REPO, capture_output=True, text=True
    )


def test_light_install_reads_digits(tmp_path):
    result = light("predict", "examples/seven.png", "--json")
    assert result.returncode == 0, result.stderr
    assert '"digit": 7' in result.stdout
    result = light("read", "examples/number-307.png")
    assert result.returncode == 0, result.stderr
    assert "307" in result.stdout
    result = light("export", "-o", str(tmp_path / "net.onnx"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "net.onnx").stat().st_size > 100_000


def test_light_install_serves(tmp_path):
    """The REST API on an install without the train extra: it answers, and when stopped
    (Ctrl-C) the process has never imported TensorFlow or Keras (LIGHT_CLI checks)."""
    import httpx

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", LIGHT_CLI, "serve", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            wait_until_serving(client, server, timeout=60)
            seven = (REPO / "examples" / "seven.png").read_bytes()
            answer = client.post("/v1/predict", files={"image": ("7.png", seven, "image/png")})
            assert answer.status_code == 200 and answer.json()["digit"] == 7
    finally:
        server.send_signal(2)  # SIGINT, as Ctrl-C
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr


def test_light_install_evaluates(real_data_dir):
    result = light("evaluate", "--dataset", "usps", "--data-dir", str(real_data_dir), "--json")
    assert result.returncode == 0, result.stderr
    assert '"accuracy": 0.9' in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--preset", "dense512", "--epochs", "1"),
        ("evaluate", "--dataset", "digits8x8"),
    ],
)
def test_light_install_names_the_missing_extra(args, tmp_path):
    result = (
        light(*args, "--output", str(tmp_path / "m.digitrec"))
        if args[0] == "train"
        else light(*args)
    )
    assert result.returncode == 1
    assert 'pip install "digitrec[train]"' in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_cli_starts_keras_without_its_scikit_learn_wrappers():
    """Keras imports scikit-learn only for its own wrappers, which digitrec never uses:
    about a second of the CLI's start-up. scikit-learn itself still imports after."""
    code = textwrap.dedent(
        """
        import sys
        from digitrec.backend import import_keras, lean_keras

        lean_keras()
        import_keras()
        assert "keras" in sys.modules and "sklearn" not in sys.modules, "sklearn imported"
        from sklearn.neural_network import MLPClassifier
        print("imported", MLPClassifier.__name__)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "imported MLPClassifier" in result.stdout


def _cpuinfo(vendor: str, flags: str) -> str:
    cpu = f"processor\t: {{}}\nvendor_id\t: {vendor}\nflags\t\t: fpu avx2 {flags}\n"
    return "\n".join(cpu.format(i) for i in range(2))  # one block per core, blank-separated


@pytest.mark.parametrize(
    ("vendor", "flags", "prefers"),
    [
        ("AuthenticAMD", "avx512f avx512_bf16", True),  # measured: a quarter less CPU time
        ("GenuineIntel", "avx512f avx512_bf16", False),  # measured: a third slower steps
        ("GenuineIntel", "avx512_bf16 amx_bf16 amx_tile", True),
        ("AuthenticAMD", "avx512f", False),  # no bfloat16 instructions: emulated, slow
        ("GenuineIntel", "", False),
    ],
)
def test_bfloat16_is_chosen_only_where_it_is_faster(vendor, flags, prefers):
    from digitrec.backend import cpu_prefers_bf16

    assert cpu_prefers_bf16(_cpuinfo(vendor, flags)) is prefers
    assert cpu_prefers_bf16("") is False
