from skipweb.cli import main

main()
