# Tako script API for PowerShell: Octopus's helpers, defined before the
# step's script is dot-sourced into this scope. $OctopusParameters is filled
# in after these definitions by Tako.

function ConvertFrom-TakoBase64([string]$Value) {
    return [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($Value))
}

function Convert-ToServiceMessageParameter([string]$Value) {
    return [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($Value))
}

function Set-OctopusVariable {
    param(
        [Parameter(Mandatory = $true)][string]$name,
        [string]$value = "",
        [switch]$sensitive
    )
    $message = "##octopus[setVariable name='$(Convert-ToServiceMessageParameter $name)' value='$(Convert-ToServiceMessageParameter $value)'"
    if ($sensitive) {
        $message += " sensitive='$(Convert-ToServiceMessageParameter 'True')'"
    }
    Write-Host "$message]"
}

function Fail-Step([string]$message) {
    if ($message) {
        Write-Host "##octopus[stepFailed message='$(Convert-ToServiceMessageParameter $message)']"
    }
    exit 1
}

function Write-TakoAtLevel([string]$Level, [string]$Message) {
    Write-Host "##octopus[stdout-$Level]"
    Write-Host $Message
    Write-Host '##octopus[stdout-default]'
}

function Write-Verbose {
    [CmdletBinding()]
    param([Parameter(Position = 0, ValueFromPipeline = $true)][string]$Message)
    process { Write-TakoAtLevel 'verbose' $Message }
}

function Write-Highlight([string]$Message) { Write-TakoAtLevel 'highlight' $Message }

function Write-Wait([string]$Message) { Write-TakoAtLevel 'wait' $Message }

function Update-Progress([string]$Percentage, [string]$Message = "") {
    Write-Host "##octopus[progress percentage='$(Convert-ToServiceMessageParameter $Percentage)' message='$(Convert-ToServiceMessageParameter $Message)']"
}

function New-OctopusArtifact {
    param(
        [Parameter(Mandatory = $true)][string]$path,
        [string]$name = ""
    )
    $full = [System.IO.Path]::GetFullPath([System.IO.Path]::Combine((Get-Location).Path, $path))
    if (-not (Test-Path -LiteralPath $full -PathType Leaf)) {
        [Console]::Error.WriteLine("there is no file at $full to collect as an artifact")
        exit 127
    }
    if (-not $name) {
        $name = [System.IO.Path]::GetFileName($full)
    }
    $length = (Get-Item -LiteralPath $full).Length
    Write-Host "Collecting $path as an artifact..."
    Write-Verbose "Artifact $name will be collected from $full after this step completes"
    Write-Host "##octopus[createArtifact path='$(Convert-ToServiceMessageParameter $full)' name='$(Convert-ToServiceMessageParameter $name)' length='$(Convert-ToServiceMessageParameter "$length")']"
}

$OctopusParameters = New-Object 'System.Collections.Generic.Dictionary[String,String]' (, [System.StringComparer]::OrdinalIgnoreCase)
