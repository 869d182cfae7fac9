"""Tako script API for Python: Octopus's helpers (Calamari's Configuration.py).

Runs the step's script (script.py beside this file) with runpy as __main__,
its initial globals holding the helpers, octopusvariables, sys, os, base64 and
binascii, as Calamari does. The variables come from variables.json beside this
file (mode 0600, in Tako's private scratch directory).
"""
import base64
import binascii
import json
import os
import os.path
import sys
from runpy import run_path

_here = os.path.dirname(os.path.abspath(__file__))
_script = os.path.join(_here, "script.py")

with open(os.path.join(_here, "variables.json"), encoding="utf-8") as _file:
    octopusvariables = json.load(_file)


def encode(value):
    return base64.b64encode(value.encode("utf-8")).decode("utf-8")


def decode(value):
    return base64.b64decode(value).decode("utf-8")


def get_octopusvariable(key):
    return octopusvariables.get(key, "")


def set_octopusvariable(name, value, sensitive=False):
    value = value if isinstance(value, str) else str(value)
    octopusvariables[name] = value
    message = "##octopus[setVariable name='{0}' value='{1}'".format(encode(name), encode(value))
    if sensitive:
        message += " sensitive='{0}'".format(encode("True"))
    print(message + "]")


def failstep(message=None):
    if message:
        print("##octopus[stepFailed message='{0}']".format(encode(str(message))))
    sys.exit(-1)


def _print_at(level, message):
    print("##octopus[stdout-{0}]".format(level))
    print(message)
    print("##octopus[stdout-default]")


def printverbose(message):
    _print_at("verbose", message)


def printhighlight(message):
    _print_at("highlight", message)


def printwait(message):
    _print_at("wait", message)


def printwarning(message):
    _print_at("warning", message)


def createartifact(path, fileName=None):
    if fileName is None:
        fileName = os.path.basename(path)
    length = str(os.stat(path).st_size) if os.path.isfile(path) else "0"
    path = os.path.abspath(path)
    printverbose("Artifact {0} will be collected from {1} after this step completes".format(fileName, path))
    print("##octopus[createArtifact path='{0}' name='{1}' length='{2}']".format(
        encode(path), encode(fileName), encode(length)))


def updateprogress(progress, message=None):
    print("##octopus[progress percentage='{0}' message='{1}']".format(
        encode(str(progress)), encode("" if message is None else str(message))))


_globals = {
    "base64": base64,
    "binascii": binascii,
    "os": os,
    "sys": sys,
    "encode": encode,
    "decode": decode,
    "get_octopusvariable": get_octopusvariable,
    "set_octopusvariable": set_octopusvariable,
    "failstep": failstep,
    "printverbose": printverbose,
    "printhighlight": printhighlight,
    "printwait": printwait,
    "printwarning": printwarning,
    "createartifact": createartifact,
    "updateprogress": updateprogress,
    "octopusvariables": octopusvariables,
}

# As under Calamari, where the script lives in the working directory: imports
# resolve from the working directory and argv holds no options.
sys.argv = [_script]
sys.path[0] = os.getcwd()
run_path(_script, _globals, "__main__")
