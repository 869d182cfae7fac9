# Example module body (not executed by the example's tests).
function Get-StatusCakeHelp { 'See https://www.statuscake.com/api/' }
