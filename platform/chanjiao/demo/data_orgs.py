"""Demo organisations: fictional Chaoyang enterprises and training institutions.

Written for this project. Names, people and phone numbers are invented; streets and areas are
the real ones of Chaoyang District, chosen where such firms actually cluster. ``key`` links
postings to their organisation; ``status`` and ``reason`` drive the approval history.
"""
from __future__ import annotations

# The association was founded by 13 training institutions; the date is a demo value.
FOUNDING_DATE = "2018-06-28"

ENTERPRISES: tuple[dict, ...] = (
    # --- CBD finance and business services ---
    dict(
        key="huirong", name="北京建外汇融财务顾问有限公司", industry="finance",
        district="建外街道", address="朝阳区建国门外大街甲8号汇融大厦16层",
        contact_name="周雅琴", contact_phone="010-65001201", member_since="2021-03-15",
        description="为CBD区域中小企业和外资代表处提供代理记账、税务申报与财务共享外包服务，现有会计人员120余人。",
    ),
    dict(
        key="taihe", name="北京朝外泰和人力资源服务有限公司", industry="finance",
        district="朝外街道", address="朝阳区朝阳门外大街22号泰和写字楼9层",
        contact_name="韩立新", contact_phone="010-65001202", member_since="2020-09-01",
        description="人力资源外包与灵活用工服务商，为金融、互联网企业提供招聘、薪酬核算与社保代理服务。",
    ),
    dict(
        key="jinqiao", name="北京呼家楼金桥保险代理有限公司", industry="finance",
        district="呼家楼街道", address="朝阳区东三环中路39号金桥中心12层",
        contact_name="马晓东", contact_phone="010-65001203",
        description="专业保险代理机构，代理寿险、健康险与企业财产险，设有电话销售中心与理赔服务部。",
    ),
    dict(
        key="jinghua", name="北京景华商务会展服务有限公司", industry="finance",
        district="左家庄街道", address="朝阳区北三环东路6号景华会展楼5层",
        contact_name="宋佳怡", contact_phone="010-65001204", member_since="2022-04-20",
        description="承办国际商务会议、行业展览与企业年会，提供会展策划、现场执行与多语种接待服务。",
    ),
    dict(
        key="hengxin", name="北京光华恒信合规科技有限公司", industry="finance",
        district="建外街道", address="朝阳区光华路15号恒信国际中心20层",
        contact_name="邱思远", contact_phone="010-65001205",
        description="为银行、支付机构和外资企业提供反洗钱筛查、合规咨询与风控数据服务。",
    ),
    # --- Wangjing internet and software ---
    dict(
        key="yunfan", name="北京望京云帆科技有限公司", industry="internet",
        district="望京街道", address="朝阳区阜通东大街6号云帆大厦A座11层",
        contact_name="李子航", contact_phone="010-64701301", member_since="2020-06-10",
        description="面向零售与餐饮连锁的SaaS服务商，产品覆盖门店管理、会员营销和供应链协同，研发团队约300人。",
    ),
    dict(
        key="shuzhi", name="北京酒仙桥数智软件有限公司", industry="internet",
        district="酒仙桥街道", address="朝阳区酒仙桥路10号数智园3号楼",
        contact_name="王博", contact_phone="010-64701302", member_since="2021-11-05",
        description="政企数字化与信创适配解决方案提供商，承接办公系统国产化迁移、数据中台建设与运维服务。",
    ),
    dict(
        key="zhiyu", name="北京望京知语智能科技有限公司", industry="internet",
        district="望京街道", address="朝阳区望京街9号知语中心B座7层",
        contact_name="陈静", contact_phone="010-64701303",
        description="大模型数据服务企业，提供语料采集清洗、数据标注、模型评测及行业智能客服产品。",
    ),
    dict(
        key="xingtu", name="北京来广营星途网络技术有限公司", industry="internet",
        district="来广营地区", address="朝阳区来广营西路5号星途科技园2层",
        contact_name="赵一鸣", contact_phone="010-64701304",
        description="移动游戏与互动内容开发团队，兼营云服务器托管与网络安全运维外包。",
    ),
    # --- Airport logistics and supply chain ---
    dict(
        key="shunda", name="北京空港顺达国际货运代理有限公司", industry="logistics",
        district="首都机场街道", address="朝阳区首都机场街道机场西路货运区12号",
        contact_name="孙海涛", contact_phone="010-64501401", member_since="2019-08-12",
        description="一类航空货运代理，经营进出口空运、报关报检和跨境电商包裹清关，日均处理货量约80吨。",
    ),
    dict(
        key="hangfu", name="北京首航地服航空服务有限公司", industry="logistics",
        district="首都机场街道", address="朝阳区首都机场街道南路综合楼3层",
        contact_name="刘倩", contact_phone="010-64501402", member_since="2020-02-18",
        description="为国内外航空公司提供旅客值机、行李查询、机坪装卸与航空配餐保障等地面服务。",
    ),
    dict(
        key="lengjian", name="北京孙河冷鉴供应链管理有限公司", industry="logistics",
        district="孙河地区", address="朝阳区孙河地区顺白路冷链物流园8号库",
        contact_name="郭建军", contact_phone="010-84501403",
        description="生鲜与医药冷链仓配企业，拥有恒温冷库1.2万平方米和冷藏车60余辆，服务商超与社区团购。",
    ),
    dict(
        key="tongda", name="北京金盏通达仓储物流有限公司", industry="logistics",
        district="金盏地区", address="朝阳区金盏地区金盏路物流园C区",
        contact_name="杨帆", contact_phone="010-84501404", status="suspended",
        reason="经核查，该企业登记的仓储场所消防验收手续已过期，暂停发布权限，待提交整改材料后恢复。",
        description="电商仓储与城市配送企业，为家电和日用品品牌提供入仓、分拣、配送一体化服务。",
    ),
    # --- Hotels and catering ---
    dict(
        key="yueting", name="北京三里屯悦庭酒店管理有限公司", industry="hospitality",
        district="三里屯街道", address="朝阳区工人体育场北路18号悦庭酒店",
        contact_name="吴敏", contact_phone="010-65801501", member_since="2019-05-06",
        description="经营两家精品商务酒店，共有客房420间，配套中餐厅、西餐厅、大堂吧与宴会厅。",
    ),
    dict(
        key="liangma", name="北京亮马河畔餐饮管理有限公司", industry="hospitality",
        district="麦子店街道", address="朝阳区亮马桥路32号河畔美食广场2层",
        contact_name="张海燕", contact_phone="010-65801502",
        description="经营融合菜、日料和咖啡品牌共11家门店，主要分布于燕莎、三里屯和望京商圈。",
    ),
    dict(
        key="weidao", name="北京团结湖味道坊餐饮有限公司", industry="hospitality",
        district="团结湖街道", address="朝阳区团结湖路7号味道坊总部",
        contact_name="高建平", contact_phone="010-65801503", member_since="2021-07-01",
        description="京味家常菜连锁，直营门店26家，在十八里店设有中央厨房，日供餐约1.5万份。",
    ),
    # --- Elderly care and health ---
    dict(
        key="kangyi", name="北京安贞康颐养老服务有限公司", industry="elderly_care",
        district="安贞街道", address="朝阳区安贞西里四区康颐养老照料中心",
        contact_name="徐丽华", contact_phone="010-64401601", member_since="2019-10-21",
        description="运营2家养老照料中心和8个社区养老服务驿站，床位共360张，提供机构养老与居家上门服务。",
    ),
    dict(
        key="chunxuan", name="北京双井椿萱养老服务有限公司", industry="elderly_care",
        district="双井街道", address="朝阳区广渠路28号椿萱社区养老驿站",
        contact_name="黄燕", contact_phone="010-64401602",
        description="专注失能失智老人照护，承接双井、劲松片区的居家养老巡视探访与助浴助餐服务。",
    ),
    dict(
        key="renhe", name="北京常营仁和医养健康管理有限公司", industry="elderly_care",
        district="常营地区", address="朝阳区常营地区长楹天街东侧仁和医养中心",
        contact_name="罗文", contact_phone="010-64401603", member_since="2022-01-10",
        description="医养结合机构，设康复科、护理院和家庭医生签约服务团队，开展术后康复与长期照护。",
    ),
    # --- Property management ---
    dict(
        key="anju", name="北京朝阳朗居物业服务有限公司", industry="property",
        district="劲松街道", address="朝阳区劲松南路11号朗居物业大厦",
        contact_name="梁国栋", contact_phone="010-67701701", member_since="2018-11-30",
        description="管理住宅小区34个、公共建筑6处，在管面积约420万平方米，员工1800余人。",
    ),
    dict(
        key="jiade", name="北京光华嘉德楼宇管理有限公司", industry="property",
        district="呼家楼街道", address="朝阳区光华路甲2号嘉德中心B1层",
        contact_name="潘志强", contact_phone="010-67701702",
        description="CBD甲级写字楼综合设施管理服务商，负责机电运维、消防中控、安保和客户服务。",
    ),
    dict(
        key="lvyuan", name="北京奥运村绿苑物业服务有限公司", industry="property",
        district="奥运村街道", address="朝阳区北辰东路绿苑小区物业中心",
        contact_name="冯晓梅", contact_phone="010-67701703",
        description="服务奥运村、亚运村片区的住宅与场馆配套物业，承担绿化养护、垃圾分类和社区服务。",
    ),
    # --- New-energy vehicles ---
    dict(
        key="xinchi", name="北京东坝新驰新能源汽车服务有限公司", industry="new_energy_vehicles",
        district="东坝地区", address="朝阳区东坝地区东坝中路新驰汽车服务园",
        contact_name="邓浩", contact_phone="010-84301801", member_since="2020-12-08",
        description="多品牌新能源汽车授权服务中心，承接三电系统维修、钣喷和事故车理赔，年进厂台次约2万。",
    ),
    dict(
        key="dianchi", name="北京黑庄户电驰电池科技有限公司", industry="new_energy_vehicles",
        district="黑庄户地区", address="朝阳区黑庄户地区万子营路电驰产业园",
        contact_name="许强", contact_phone="010-84301802",
        description="动力电池梯次利用与检测维修企业，提供电池包拆解检测、模组均衡和储能系统集成。",
    ),
    dict(
        key="yichong", name="北京豆各庄易充能源科技有限公司", industry="new_energy_vehicles",
        district="豆各庄地区", address="朝阳区豆各庄地区于家围南路易充运维中心",
        contact_name="曹颖", contact_phone="010-84301803",
        description="运营朝阳区东部公共充电站120余座，提供充电桩安装、巡检维护和运营平台服务。",
    ),
    # --- 798 cultural and creative ---
    dict(
        key="shiguang", name="北京七九八拾光文化传媒有限公司", industry="cultural_creative",
        district="酒仙桥街道", address="朝阳区酒仙桥路4号798艺术区D区",
        contact_name="林晓", contact_phone="010-59701901", member_since="2021-05-18",
        description="位于798艺术区的内容工作室，承接品牌短片、展览影像和文创IP孵化。",
    ),
    dict(
        key="guanlan", name="北京将台观澜艺术设计有限公司", industry="cultural_creative",
        district="将台地区", address="朝阳区将台路甲2号观澜设计园",
        contact_name="方圆", contact_phone="010-59701902",
        description="展览展示与空间设计公司，为博物馆、美术馆和企业展厅提供策划、设计与布展服务。",
    ),
    dict(
        key="moyan", name="北京崔各庄墨研文化艺术有限公司", industry="cultural_creative",
        district="崔各庄地区", address="朝阳区崔各庄地区草场地艺术区东区",
        contact_name="钱墨", contact_phone="010-59701903",
        description="经营书画装裱修复、艺术品经纪与艺术家工作室租赁，服务周边画廊和藏家。",
    ),
    # --- E-commerce and live commerce ---
    dict(
        key="xingbo", name="北京三间房星播直播电商有限公司", industry="ecommerce",
        district="三间房地区", address="朝阳区三间房地区定福庄东街星播直播基地",
        contact_name="谢娜娜", contact_phone="010-85702001", member_since="2022-08-16",
        description="直播电商服务机构，签约主播40余人，为食品、美妆和农产品品牌提供直播代运营与短视频营销。",
    ),
    dict(
        key="youpin", name="北京十里河优品电子商务有限公司", industry="ecommerce",
        district="十八里店地区", address="朝阳区十八里店地区十里河家居广场3号楼",
        contact_name="蒋涛", contact_phone="010-85702002",
        description="家居建材品牌电商运营商，在主流电商平台运营旗舰店9家，并开展家居直播。",
    ),
    dict(
        key="yuncang", name="北京高碑店跨境云仓电子商务有限公司", industry="ecommerce",
        district="高碑店地区", address="朝阳区高碑店地区通惠河北路云仓跨境中心", status="pending",
        contact_name="沈一帆", contact_phone="010-85702003",
        description="新设立的跨境电商企业，经营文创和茶叶出口，计划在北美和东南亚开设店铺。",
    ),
    # --- Manufacturing and construction ---
    dict(
        key="jinggong", name="北京垡头精工机电设备有限公司", industry="manufacturing",
        district="垡头街道", address="朝阳区垡头西路9号精工厂区",
        contact_name="贾卫东", contact_phone="010-67302101", member_since="2019-03-22",
        description="生产配电柜和自动化控制设备，拥有数控加工车间与装配线，员工约260人。",
    ),
    dict(
        key="chengjian", name="北京南磨房城建装饰工程有限公司", industry="construction",
        district="南磨房地区", address="朝阳区南磨房路37号城建大厦6层",
        contact_name="董建华", contact_phone="010-67302102",
        description="建筑装饰与机电安装施工企业，承接写字楼改造、老旧小区综合整治和装配式内装项目。",
    ),
)

INSTITUTIONS: tuple[dict, ...] = (
    # --- 职业技能类 (founding members first) ---
    dict(
        key="yangguang", name="北京市朝阳区恒技职业技能培训学校", category="vocational_skill",
        district="垡头街道", address="朝阳区垡头路甲15号恒技培训楼",
        contact_name="任建国", contact_phone="010-67303101", founding=True,
        description="综合性职业技能培训学校，开设电工、焊工、钳工和工业机器人等工种培训，设有实操车间2400平方米。",
    ),
    dict(
        key="dongfang", name="北京朝阳鼎味烹饪职业技能培训学校", category="vocational_skill",
        district="潘家园街道", address="朝阳区潘家园路6号鼎味烹饪实训楼",
        contact_name="苏大勇", contact_phone="010-67303102", founding=True,
        description="餐饮技能培训学校，设中餐、面点、西点和咖啡实训室，教师多为资深行政总厨。",
    ),
    dict(
        key="kangle", name="北京朝阳康乐养老护理职业技能培训学校", category="vocational_skill",
        district="和平街街道", address="朝阳区和平街十三区康乐培训中心",
        contact_name="陆芳", contact_phone="010-67303103", founding=True,
        description="专注养老护理、医疗护理员和失智照护培训，与区内多家养老机构共建实训基地。",
    ),
    dict(
        key="huaan", name="北京朝阳安行安全技术培训学校", category="vocational_skill",
        district="王四营地区", address="朝阳区王四营地区观音堂路安行安全实训基地",
        contact_name="魏国强", contact_phone="010-67303104", founding=True,
        description="安全生产与特种作业培训机构，开展电工作业、焊接与热切割、高处作业和有限空间作业培训。",
    ),
    dict(
        key="chicheng", name="北京朝阳驰程汽车职业技能培训学校", category="vocational_skill",
        district="东坝地区", address="朝阳区东坝中路38号驰程汽车实训中心",
        contact_name="曾志伟", contact_phone="010-67303105", founding=True,
        description="汽车维修与新能源汽车技术培训学校，配备高压安全实训台架和整车实训工位。",
    ),
    dict(
        key="qiaoshou", name="北京朝阳慧家家政职业技能培训学校", category="vocational_skill",
        district="八里庄街道", address="朝阳区八里庄东里慧家家政培训中心",
        contact_name="彭秀英", contact_phone="010-67303106", founding=True,
        description="家政、母婴护理、育婴和整理收纳培训学校，为家政企业定向输送持证人员。",
    ),
    dict(
        key="xingguang", name="北京朝阳星光电商直播职业技能培训学校", category="vocational_skill",
        district="三间房地区", address="朝阳区三间房南里星光直播实训基地",
        contact_name="田甜", contact_phone="010-67303107", founding=True,
        description="互联网营销师与电商运营培训学校，建有12间直播实训间和短视频拍摄棚。",
    ),
    dict(
        key="wangjing_digital", name="北京朝阳望京数字技能培训学校", category="vocational_skill",
        district="望京街道", address="朝阳区望京东路8号数字技能实训楼",
        contact_name="于洋", contact_phone="010-67303108", founding=True,
        description="数字技能培训学校，开设人工智能训练师、数据标注、软件测试和网络运维课程。",
    ),
    dict(
        key="liren", name="北京朝阳予美美容美发职业技能培训学校", category="vocational_skill",
        district="小关街道", address="朝阳区小关北里予美培训中心",
        contact_name="姜丽", contact_phone="010-67303109", founding=True,
        description="美容、美发与保健按摩技能培训学校，面向转岗人员提供初、中级技能培训。",
    ),
    dict(
        key="hanggang", name="北京朝阳航港物流职业技能培训学校", category="vocational_skill",
        district="首都机场街道", address="朝阳区首都机场街道二纬路航港培训中心",
        contact_name="龚明", contact_phone="010-67303110", founding=True,
        description="航空物流与仓储技能培训学校，开设货运代理、报关、叉车和仓储管理课程，配备模拟仓库。",
    ),
    dict(
        key="antai", name="北京朝阳安泰物业职业技能培训学校", category="vocational_skill",
        district="劲松街道", address="朝阳区劲松九区安泰物业学院",
        contact_name="崔建新", contact_phone="010-67303111", founding=True,
        description="物业服务技能培训学校，开设消防设施操作员、物业管理、暖通空调和电梯维保课程。",
    ),
    # --- 专业技术类 ---
    dict(
        key="zhengze", name="北京朝阳正则财经培训学校", category="professional_technical",
        district="呼家楼街道", address="朝阳区呼家楼北街正则财经教学楼",
        contact_name="程雪", contact_phone="010-67303112", founding=True,
        description="财会与金融专业技术人员培训学校，开展会计专业技术资格考前辅导、继续教育和企业内训。",
    ),
    dict(
        key="zhiyun", name="北京朝阳智云信息技术培训学校", category="professional_technical",
        district="酒仙桥街道", address="朝阳区酒仙桥北路7号智云大厦4层",
        contact_name="江涛", contact_phone="010-67303113", founding=True,
        description="信息技术专业技术人员培训学校，开设软件开发、云计算、网络安全和大模型应用课程。",
    ),
    dict(
        key="yijiang", name="北京朝阳艺匠设计培训学校", category="professional_technical",
        district="酒仙桥街道", address="朝阳区酒仙桥路2号798艺术区B区艺匠工坊",
        contact_name="白露", contact_phone="010-67303114", member_since="2019-09-10",
        description="设计与数字艺术培训学校，开设平面、室内、展陈设计及影视后期课程，教师来自798一线工作室。",
    ),
    dict(
        key="zhuye", name="北京朝阳筑业建设工程培训学校", category="professional_technical",
        district="南磨房地区", address="朝阳区南磨房路29号筑业培训楼",
        contact_name="石磊", contact_phone="010-67303115", member_since="2020-05-12",
        description="建设工程专业技术培训学校，开设工程造价、BIM建模、施工管理和安全管理课程。",
    ),
    dict(
        key="borui", name="北京朝阳博睿人力资源培训学校", category="professional_technical",
        district="朝外街道", address="朝阳区朝外大街乙6号博睿培训中心",
        contact_name="方静", contact_phone="010-67303116", member_since="2021-02-25",
        description="人力资源与企业管理培训学校，开设人力资源管理、企业培训师和项目管理课程。",
    ),
    dict(
        key="renxin", name="北京朝阳仁心健康管理培训学校", category="professional_technical",
        district="常营地区", address="朝阳区常营北路仁心健康培训中心", status="pending",
        contact_name="何晴", contact_phone="010-67303117",
        description="新申请入会的健康服务培训机构，计划开设健康管理、营养指导和心理咨询课程。",
    ),
)
