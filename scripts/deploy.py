"""`ape run deploy`: deploy the whole system to the connected network and write its manifest.

ape run deploy --network ethereum:local:foundry
"""

from pathlib import Path

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand

from simulation.build import compile_contracts
from simulation.deploy import deploy_system


@click.command(cls=ConnectedProviderCommand)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    default=Path("out/manifest.json"),
    show_default=True,
)
def cli(manifest: Path) -> None:
    """Deploy tokens, feeds, oracle, pool, insurance, vault and lens; write addresses and ABIs."""
    d = deploy_system(chain.provider.web3, compile_contracts(), accounts.test_accounts[0].address)
    d.write_manifest(manifest)
    for name, address in d.addresses.items():
        click.echo(f"{name:<14} {address}")
    click.echo(f"manifest: {manifest}")
