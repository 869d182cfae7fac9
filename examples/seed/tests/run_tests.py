# Stand-in for `Invoke-Pester -EnableExit` (no PowerShell on this machine):
# checks what the Pester suite would check first, with the script API.
import json
import pathlib

creds = json.loads(pathlib.Path(".creds").read_text())
for field in ("Username", "ApiKey"):
    value = creds[field]
    if not value or value.startswith("#{"):
        failstep("the credentials file has no " + field + ": set the StatusCake variables")
print("credentials file is valid JSON for user", creds["Username"])

manifest = pathlib.Path("Modules/StatusCakeDSC/StatusCakeDSC.psd1").read_text()
assert "ModuleVersion" in manifest
print("testing", get_octopusvariable("Tako.Manifest.Name"), get_octopusvariable("Tako.Manifest.Version"),
      "in", get_octopusvariable("Octopus.Environment.Name"))
printverbose("all checks passed")
