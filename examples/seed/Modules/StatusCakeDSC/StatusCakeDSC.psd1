#
# Module manifest for module 'StatusCakeDSC' (example for Tako)
#
@{
    RootModule        = 'StatusCakeDSC.psm1'
    ModuleVersion     = '1.4.0'
    GUID              = '5f4a4a6e-6c4b-4b0e-9a43-5d1b2f9c7e11'
    Author            = 'Takofukku users'
    CompanyName       = 'Example'
    Copyright         = '(c) Example. All rights reserved.'
    Description       = @'
DSC resources for StatusCake tests and contact groups.
'@
    FunctionsToExport = @()
    CmdletsToExport   = @()
    DscResourcesToExport = 'StatusCakeTest', 'StatusCakeContactGroup'
    PrivateData = @{
        PSData = @{
            Tags       = @('DSC', 'StatusCake', 'Monitoring')
            ProjectUri = 'https://github.com/example/StatusCakeDSC'
            LicenseUri = 'https://github.com/example/StatusCakeDSC/blob/master/LICENSE'
        }
    }
}
