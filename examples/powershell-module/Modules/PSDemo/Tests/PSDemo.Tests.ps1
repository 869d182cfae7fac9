# Pester tests (run with Invoke-Pester where PowerShell is installed; the
# takofile's test step checks the same things without PowerShell).
Describe 'Get-Greeting' {
    It 'greets by name' {
        Import-Module "$PSScriptRoot/../PSDemo.psd1" -Force
        Get-Greeting -Name 'Tako' | Should -Be 'Hello, Tako!'
    }
}
