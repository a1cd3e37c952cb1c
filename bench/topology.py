"""The farm settings the comparison runs under, by name (``compare.py --topology NAME``).

- ``one-host``: every feed on 127.0.0.1, as a self-hosted RSSHub serves its routes; the
  setting the targets are stated for.
- ``64-hosts``: feeds spread over 127.0.0.1-127.0.0.64, so a per-host limit never binds.
- ``gzip``: one host, bodies gzip-compressed for clients that accept it.
- ``latency``: one host, every response 50 ms late, as from a server across a network.
- ``tls``: one host over HTTPS, with a certificate from a local CA (``trustme``) that both tools
  are told to trust through the environment (``SSL_CERT_FILE`` for httpx, ours;
  ``REQUESTS_CA_BUNDLE`` for requests, reader's).
- ``corpus``: one host, the real documents of ``tests/data/corpus`` (Atom, RSS 1.0, large
  feeds; ``bench.farm.replayed_files``) served beside the generated ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.farm import Farm

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"
LATENCY_MS = 50.0


@dataclass(frozen=True, slots=True)
class Topology:
    """How the farm serves the feeds in one setting."""

    name: str
    hosts: int = 1
    gzip: bool = False
    latency_ms: float = 0.0
    tls: bool = False
    corpus: bool = False


TOPOLOGIES = {
    topology.name: topology
    for topology in (
        Topology("one-host"),
        Topology("64-hosts", hosts=64),
        Topology("gzip", gzip=True),
        Topology("latency", latency_ms=LATENCY_MS),
        Topology("tls", tls=True),
        Topology("corpus", corpus=True),
    )
}
DEFAULT = "one-host"


@dataclass(frozen=True, slots=True)
class Trust:
    """A local CA's certificate and a server certificate it signed for the farm's addresses."""

    ca: Path
    chain: Path
    key: Path

    def env(self) -> dict[str, str]:
        """What tells both tools' HTTP clients to trust the CA, and nothing else."""
        return {"SSL_CERT_FILE": str(self.ca), "REQUESTS_CA_BUNDLE": str(self.ca)}


def make_trust(folder: Path, hosts: int) -> Trust:
    """A CA and a certificate for 127.0.0.1 to 127.0.0.<hosts>, written to ``folder``."""
    import trustme  # noqa: PLC0415  (only the tls setting needs it)

    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    server = authority.issue_cert(*(f"127.0.0.{1 + index}" for index in range(hosts)))
    trust = Trust(ca=folder / "ca.pem", chain=folder / "farm.pem", key=folder / "farm.key")
    authority.cert_pem.write_to_path(str(trust.ca))
    server.private_key_pem.write_to_path(str(trust.key))
    trust.chain.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return trust


def start_farm(
    topology: Topology, feeds: int, items: int, *, seed: int, workdir: Path
) -> tuple[Farm, Trust | None]:
    """The farm ``topology`` describes (not yet entered), and the trust its clients need."""
    hosts = min(topology.hosts, max(feeds, 1))
    trust = make_trust(workdir / "tls", hosts) if topology.tls else None
    farm = Farm(
        feeds,
        items,
        seed=seed,
        hosts=hosts,
        gzip=topology.gzip,
        latency_ms=topology.latency_ms,
        replay=CORPUS if topology.corpus else None,
        tls=(trust.chain, trust.key, trust.ca) if trust else None,
    )
    return farm, trust
