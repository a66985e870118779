"""Certificates for the TLS tests, made with openssl: a CA of the test's own, a server
certificate it signs for 127.0.0.1 and localhost, and a second CA that signed nothing."""

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    # A CA that did not sign the server's certificate: a client trusting it must refuse.
    other_ca: Path


def make_certificates(directory: Path) -> Certificates:
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    _self_signed_ca(ca_key, ca, "durable-jobs test CA")
    other_key, other_ca = directory / "other-ca.key", directory / "other-ca.pem"
    _self_signed_ca(other_key, other_ca, "some other CA")
    server_key, request = directory / "server.key", directory / "server.csr"
    server_cert, extensions = directory / "server.pem", directory / "server.ext"
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", server_key, "-out", request, "-subj", "/CN=localhost",
    )  # fmt: skip
    extensions.write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "extendedKeyUsage = serverAuth\n"
        "basicConstraints = CA:FALSE\n"
    )
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-out", server_cert, "-extfile", extensions,
    )  # fmt: skip
    return Certificates(ca=ca, server_cert=server_cert, server_key=server_key, other_ca=other_ca)


def _self_signed_ca(key: Path, cert: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign",
    )  # fmt: skip


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)
