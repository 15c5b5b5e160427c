from pki_ceremony.cli import main

main()
