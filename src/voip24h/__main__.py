from voip24h.cli import main

main()
