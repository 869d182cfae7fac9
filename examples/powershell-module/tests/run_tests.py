# The module's checks, without PowerShell: the settings file written by the
# previous step, the manifest's required fields, and every exported function
# defined in the module. (Where pwsh is installed, run Invoke-Pester instead.)
import json
import pathlib
import re

settings = json.loads(pathlib.Path(".settings.json").read_text())
print("settings greeting:", settings["greeting"])

module = pathlib.Path("Modules/PSDemo")
manifest = (module / "PSDemo.psd1").read_text()
for field in ("ModuleVersion", "Author", "Description"):
    if not re.search(r"^\s*" + field + r"\s*=", manifest, re.M):
        failstep("the manifest has no " + field)

exported = re.search(r"FunctionsToExport\s*=\s*@\(([^)]*)\)", manifest).group(1)
names = re.findall(r"'([^']+)'", exported)
body = (module / "PSDemo.psm1").read_text()
for name in names:
    if not re.search(r"^function\s+" + re.escape(name) + r"\b", body, re.M | re.I):
        failstep("Test failed: " + name + " is exported but not defined in PSDemo.psm1")
    print("ok:", name, "is defined")
print("all", len(names), "checks passed for PSDemo", get_octopusvariable("Tako.Manifest.Version"))
