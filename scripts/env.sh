# Source me (`source scripts/env.sh`): the project's tools first on PATH, solc registered.
_marginsim_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case ":$PATH:" in
  *":$_marginsim_root/.tools/bin:"*) ;;
  *) export PATH="$_marginsim_root/.tools/bin:$_marginsim_root/.venv/bin:$PATH" ;;
esac
export VIRTUAL_ENV="$_marginsim_root/.venv"
export SOLCX_BINARY_PATH="$_marginsim_root/.solcx"
unset _marginsim_root
