from ganedit.cli import main

main()
