// The world options, output lines and signal helpers `robotd` shares with `robotd-sim`, visible
// in every file of this tool as they were when they lived here.
@_exported import RobotdCommandLine
