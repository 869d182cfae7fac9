# PSDemo: greets people.

$script:Greeting = 'Hello'

function Get-Greeting {
    param([Parameter(Mandatory)][string] $Name)
    "$script:Greeting, $Name!"
}

function Set-Greeting {
    param([Parameter(Mandatory)][string] $Greeting)
    $script:Greeting = $Greeting
}

Export-ModuleMember -Function Get-Greeting, Set-Greeting
