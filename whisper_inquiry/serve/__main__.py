from whisper_inquiry.serve.app import main

main()
