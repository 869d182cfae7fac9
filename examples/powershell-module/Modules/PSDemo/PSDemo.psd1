#
# Module manifest for module 'PSDemo' (a Tako example)
#
@{
    RootModule        = 'PSDemo.psm1'
    ModuleVersion     = '1.0.0'
    GUID              = '3d0c8a52-5b1e-4f7d-9a3c-2f64f1c1a001'
    Author            = 'Tako example'
    CompanyName       = 'Tako'
    Copyright         = '(c) Tako. All rights reserved.'
    Description       = 'Greets people. An example module for the Tako continuous-delivery server.'
    PowerShellVersion = '5.1'
    RequiredModules   = @(
        @{ ModuleName = 'PSDemoHelpers'; ModuleVersion = '0.1.0' }
    )
    FunctionsToExport = @('Get-Greeting', 'Set-Greeting')
    CmdletsToExport   = @()
    AliasesToExport   = @()
    PrivateData = @{
        PSData = @{
            Tags         = @('Example', 'Greeting', 'Tako')
            ProjectUri   = 'https://example.com/psdemo'
            LicenseUri   = 'https://example.com/psdemo/license'
            ReleaseNotes = 'First release.'
        }
    }
}
