from dockyard.cli.app import main

main()
