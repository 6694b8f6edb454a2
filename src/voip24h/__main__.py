from voip24h.cli.main import main

main()
