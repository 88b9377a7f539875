from bot.testing.fake_bot_api.standalone import main

main()
